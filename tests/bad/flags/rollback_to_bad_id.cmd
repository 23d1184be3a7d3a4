rollback
-i
{lab}
--group
lab
--limit
h1
--to
r 1
