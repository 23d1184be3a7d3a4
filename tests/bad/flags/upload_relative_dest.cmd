upload
h1
../marker.yaml
tend-bad-marker
-i
{lab}
