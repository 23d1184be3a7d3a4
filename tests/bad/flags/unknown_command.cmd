exce
h1
-i
{lab}
--
touch
/tmp/tend-bad-marker
