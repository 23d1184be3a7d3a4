vault
encrypt
{case}/secret.yaml
--vault-password-file
password
