exec
h1
-i
inventory/prod.yaml
--
touch
/tmp/tend-bad-marker
