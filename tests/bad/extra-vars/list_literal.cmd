exec
h1
-i
{lab}
-e
[1, 2]
--
touch
/tmp/tend-bad-marker
