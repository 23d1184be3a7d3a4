exec
h1
-i
{lab}
-e
{'release': '2}
--
touch
/tmp/tend-bad-marker
