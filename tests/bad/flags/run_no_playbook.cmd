run
-i
{lab}
