exec
h1
-i
{lab}
--format
