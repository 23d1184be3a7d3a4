exec
h1
-i
{lab}
-e
{"release":	"2", "hosts": [1}
--
touch
/tmp/tend-bad-marker
