exec
h1
-i
{lab}
-e
{"release": "2", "release": "3"}
--
touch
/tmp/tend-bad-marker
