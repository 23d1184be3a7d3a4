run
../marker.yaml
-i
{lab}
--limit
h1
--shard
1/0
