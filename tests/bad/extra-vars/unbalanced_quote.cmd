exec
h1
-i
{lab}
-e
motd='hello world
--
touch
/tmp/tend-bad-marker
