exec
hh1
-i
{lab}
--
touch
/tmp/tend-bad-marker
