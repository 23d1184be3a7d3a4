run
../marker.yaml
{case}/playbook.yaml
-i
{lab}
--limit
h1
