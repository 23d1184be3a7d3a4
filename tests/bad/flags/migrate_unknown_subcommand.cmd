migrate
upp
-i
{lab}
