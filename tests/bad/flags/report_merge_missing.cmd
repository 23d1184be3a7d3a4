report
merge
shard-1.jsonl
