exec
~h(1
-i
{lab}
--
touch
/tmp/tend-bad-marker
