vault
view
{case}/plain.yaml
--vault-password-file
password
