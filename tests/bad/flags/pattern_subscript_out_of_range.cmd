exec
lab[99]
-i
{lab}
--
touch
/tmp/tend-bad-marker
