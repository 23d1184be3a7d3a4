vault
view
{case}/secret.yaml
--vault-password-file
password
