vault
rekey
{case}/secret.yaml
--vault-password-file
password
