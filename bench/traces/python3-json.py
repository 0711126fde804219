# A small, allocation-heavy Python program: parse, transform and serialise
# records, as scripts that glue data together do.
import json, re, collections
words = re.findall(r"[a-z]+", open("/usr/share/common-licenses/GPL-3").read().lower())
counts = collections.Counter(words)
records = [{"id": i, "word": w, "n": counts[w], "tags": [w[:3], w[-3:]]} for i, w in enumerate(words[:20000])]
text = json.dumps(records)
back = json.loads(text)
index = collections.defaultdict(list)
for r in back:
    index[r["word"][0]].append(r)
summary = {k: sum(r["n"] for r in v) for k, v in sorted(index.items())}
print(len(text), len(summary))
