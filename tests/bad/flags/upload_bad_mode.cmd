upload
h1
../marker.yaml
/tmp/tend-bad-marker
-i
{lab}
--mode
0999
