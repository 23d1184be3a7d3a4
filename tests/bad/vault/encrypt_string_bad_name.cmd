vault
encrypt-string
--name
shop-db-password
s3cret
--vault-password-file
password
