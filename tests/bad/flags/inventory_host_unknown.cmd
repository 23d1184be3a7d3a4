inventory
-i
{lab}
--host
h1x
