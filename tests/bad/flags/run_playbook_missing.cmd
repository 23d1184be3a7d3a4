run
site.yml
-i
{lab}
