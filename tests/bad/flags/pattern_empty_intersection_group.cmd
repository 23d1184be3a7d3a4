exec
lab:&nowhere
-i
{lab}
--
touch
/tmp/tend-bad-marker
