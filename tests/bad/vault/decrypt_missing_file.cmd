vault
decrypt
{case}/secrets.yaml
--vault-password-file
password
