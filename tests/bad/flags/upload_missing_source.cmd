upload
h1
release.war
/tmp/tend-bad-marker
-i
{lab}
