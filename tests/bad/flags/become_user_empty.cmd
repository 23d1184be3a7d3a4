exec
h1
-i
{lab}
--become-user

--
touch
/tmp/tend-bad-marker
