"""Issue 18, point 2: does a cross-encoder from scratch learn the paraphrase world when it also
learns from the generator's privileged labels (`adam teaching-set --profiles`)?

A PyTorch prototype of the demo's teacher (BERT from scratch, the world's WordPiece, 64 wide,
2 layers, groups of one positive and 7 of BM25's top 30, listwise loss), with optional auxiliary
losses that only training sees (the exported model would be a plain cross-encoder):

  tokens  every query and passage piece that writes an attribute value is tagged with the value
          (synonyms share it: crimson = red) and its role: asked (query), the passage creature's
          own stated value, or foreign (another creature's, ruled out, "never in the ...",
          a distractor's). Two linear heads on the last hidden states.
  match   each query piece that writes a value is tagged with what the passage does with that
          attribute: states the asked value / contradicts it / leaves it unstated (a linear head on
          the hidden states of --match-layer): the lookup a reader does before it judges.
  pair    from the pooled [CLS], per attribute: not asked / stated and matching / contradicted
          (stated otherwise, or ruled out) / unstated: the judgement rule, decomposed.

    python3 scripts/teaching_aux_teacher.py WORK --aux tokens,pair --steps 3000 --out NAME

WORK is scripts/teaching_teacher.sh's folder (train/ and test/, the training world's
negatives.train.jsonl, bm25.test.run, teacher-config.json), each world with its profiles.jsonl:
rerun its `adam teaching-set` line with `--profiles` (the other files come out the same). To
train on the demo's own world, point train/ at test/ and use that world's train negatives. Writes WORK/NAME.test.run
(the teacher reranking BM25's top 100 for the test queries) and WORK/NAME.log.jsonl.
A passage's mention of its own value inside a sentence about another creature that happens to
share it is tagged own (the profile does not say which sentence a value came from).
"""

import argparse
import json
import math
import random
import re
import time

import torch
import torch.nn.functional as F
from tokenizers import Tokenizer
from transformers import BertConfig, BertModel

ATTRS = ["size", "pattern", "colour", "habitat", "diet", "call", "region"]
NONE, OWN, FOREIGN = 0, 1, 2


def read_jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


class World:
    """A BEIR folder with its profiles.jsonl."""

    def __init__(self, folder):
        self.corpus = {d["_id"]: (d["title"] + " " + d["text"]).strip() for d in read_jsonl(f"{folder}/corpus.jsonl")}
        self.queries = {q["_id"]: q["text"] for q in read_jsonl(f"{folder}/queries.jsonl")}
        self.forms, self.passages, self.asked = {}, {}, {}
        for row in read_jsonl(f"{folder}/profiles.jsonl"):
            if "attribute" in row:
                self.forms[row["attribute"]] = row["forms"]
            elif "passage" in row:
                self.passages[row["passage"]] = row
            else:
                self.asked[row["query"]] = row["asked"]
        self.offset, n = {}, 0
        for a in ATTRS:
            self.offset[a] = n
            n += len(self.forms[a])
        self.values = n
        by_form = {}
        for a in ATTRS:
            for v, forms in enumerate(self.forms[a]):
                for form in forms:
                    by_form.setdefault(form.lower(), set()).add((a, v))
        self.by_form = {f: next(iter(s)) for f, s in by_form.items() if len(s) == 1}
        alternation = "|".join(re.escape(f) for f in sorted(self.by_form, key=len, reverse=True))
        self.pattern = re.compile(rf"(?<![\w-])({alternation})(?![\w-])")

    def mentions(self, text, own_of):
        """(start, end, global value id, role) of every value form in `text`."""
        out = []
        for m in self.pattern.finditer(text.lower()):
            a, v = self.by_form[m.group(1)]
            out.append((m.start(), m.end(), self.offset[a] + v, own_of(a, v)))
        return out

    def attribute_of(self, gid):
        """Index in ATTRS of a global value id."""
        return max(i for i, a in enumerate(ATTRS) if self.offset[a] <= gid)

    def grade(self, qid, did):
        asked, p = self.asked[qid], self.passages[did]
        if p["creature"] is None:
            return 0
        matched = sum(1 for a, v in asked.items() if p["stated"].get(a) == v)
        contradicted = sum(
            1 for a, v in asked.items() if (a in p["stated"] and p["stated"][a] != v) or p["excluded"].get(a) == v
        )
        if matched == len(asked):
            return 2
        return 1 if matched + 1 == len(asked) and contradicted == 0 else 0

    def states(self, qid, did):
        """Per attribute: 0 not asked, 1 stated and matching, 2 contradicted, 3 unstated."""
        asked, p = self.asked[qid], self.passages[did]
        out = []
        for a in ATTRS:
            if a not in asked:
                out.append(0)
            elif p["stated"].get(a) == asked[a]:
                out.append(1)
            elif a in p["stated"] or p["excluded"].get(a) == asked[a]:
                out.append(2)
            else:
                out.append(3)
        return out


class Encoded:
    """Each text's pieces (no special tokens) with per-piece value and role tags."""

    def __init__(self, tokenizer, world):
        self.tok, self.world, self.cache = tokenizer, world, {}

    def get(self, kind, key):
        if (kind, key) in self.cache:
            return self.cache[(kind, key)]
        w = self.world
        if kind == "q":
            text = w.queries[key]
            mentions = w.mentions(text, lambda a, v: OWN)
        else:
            text = w.corpus[key]
            p = w.passages[key]
            mentions = w.mentions(text, lambda a, v: OWN if p["stated"].get(a) == v else FOREIGN)
        enc = self.tok.encode(text, add_special_tokens=False)
        values, roles = [], []
        for start, end in enc.offsets:
            hit = next(((g, r) for s, e, g, r in mentions if s <= start and end <= e), None)
            values.append(hit[0] + 1 if hit else 0)
            roles.append(hit[1] if hit else NONE)
        out = (enc.ids, values, roles)
        self.cache[(kind, key)] = out
        return out


def pair_batch(enc, pairs, max_len, cls_id, sep_id, states=None):
    """[CLS] q [SEP] p [SEP], longest-first truncation, padded: ids, types, mask, value tags, role
    tags, and (with `states`, one list per pair) each query value piece's match state."""
    rows = []
    for n, (qid, did) in enumerate(pairs):
        q, p = enc.get("q", qid), enc.get("p", did)
        lq, lp = len(q[0]), len(p[0])
        while lq + lp > max_len - 3:
            if lq > lp:
                lq -= 1
            else:
                lp -= 1
        ids = [cls_id] + q[0][:lq] + [sep_id] + p[0][:lp] + [sep_id]
        types = [0] * (lq + 2) + [1] * (lp + 1)
        values = [-100] + q[1][:lq] + [-100] + p[1][:lp] + [-100]
        roles = [-100] + q[2][:lq] + [-100] + p[2][:lp] + [-100]
        match = [-100] * len(ids)
        if states is not None:
            for i, g in enumerate(q[1][:lq]):
                if g:
                    match[1 + i] = states[n][enc.world.attribute_of(g - 1)]
        rows.append((ids, types, values, roles, match))
    width = max(len(r[0]) for r in rows)

    def pad(i, fill):
        return torch.tensor([r[i] + [fill] * (width - len(r[i])) for r in rows])

    ids = pad(0, 0)
    return ids, pad(1, 0), (ids != 0).long(), pad(2, -100), pad(3, -100), pad(4, -100)


class Teacher(torch.nn.Module):
    def __init__(self, config, values):
        super().__init__()
        self.bert = BertModel(config, add_pooling_layer=True)
        h = config.hidden_size
        self.score = torch.nn.Linear(h, 1)
        self.value_head = torch.nn.Linear(h, values + 1)
        self.role_head = torch.nn.Linear(h, 3)
        self.state_head = torch.nn.Linear(h, len(ATTRS) * 4)
        self.match_head = torch.nn.Linear(h, 4)
        for m in [self.score, self.value_head, self.role_head, self.state_head, self.match_head]:
            torch.nn.init.normal_(m.weight, std=config.initializer_range)
            torch.nn.init.zeros_(m.bias)

    def forward(self, ids, types, mask):
        out = self.bert(input_ids=ids, token_type_ids=types, attention_mask=mask, output_hidden_states=True)
        return out.hidden_states, out.pooler_output


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("work")
    ap.add_argument("--out", required=True)
    ap.add_argument("--aux", default="", help="comma list of: tokens, pair")
    ap.add_argument("--aux-weight", type=float, default=1.0)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--warmup", type=float, default=0.05)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--group", type=int, default=8)
    ap.add_argument("--depth", type=int, default=30)
    ap.add_argument("--max-length", type=int, default=96)
    ap.add_argument("--layers", type=int, default=0, help="override num_hidden_layers")
    ap.add_argument("--hidden", type=int, default=0, help="override hidden_size (intermediate 4x)")
    ap.add_argument("--tag-layer", type=int, default=0, help="layer whose states the token heads read (0: last)")
    ap.add_argument("--match-layer", type=int, default=0, help="layer whose states the match head reads (0: last)")
    ap.add_argument("--graded", type=float, default=0.0,
                    help="listwise targets softmax(grade x this) over each group (grades from the profiles), 0: one-hot")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    aux = set(filter(None, args.aux.split(",")))
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    rng = random.Random(args.seed)
    work = args.work

    tokenizer = Tokenizer.from_file(f"{work}/test/tokenizer.json")
    cls_id, sep_id = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    train, test = World(f"{work}/train"), World(f"{work}/test")
    cfg = json.load(open(f"{work}/teacher-config.json"))
    if args.layers:
        cfg["num_hidden_layers"] = args.layers
    if args.hidden:
        cfg["hidden_size"], cfg["intermediate_size"] = args.hidden, 4 * args.hidden
    cfg.pop("architectures", None)
    config = BertConfig(**cfg)
    model = Teacher(config, train.values)
    groups = [g for g in read_jsonl(f"{work}/negatives.train.jsonl") if g["positives"] and g["negatives"]]
    enc = Encoded(tokenizer, train)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    warm = max(1, int(args.warmup * args.steps))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / warm if s < warm else max(0.0, (args.steps - s) / (args.steps - warm))
    )
    order, at = [], 0
    log = open(f"{work}/{args.out}.log.jsonl", "w")
    t0, window = time.time(), []
    for step in range(args.steps):
        if at + args.batch > len(order):
            order, at = list(range(len(groups))), 0
            rng.shuffle(order)
        batch = [groups[i] for i in order[at : at + args.batch]]
        at += args.batch
        pairs = []
        for g in batch:
            pos = rng.choice(g["positives"])["doc_id"]
            pool = [n["doc_id"] for n in g["negatives"][: args.depth]]
            negs = rng.sample(pool, min(args.group - 1, len(pool)))
            while len(negs) < args.group - 1:
                negs.append(rng.choice(pool))
            pairs += [(g["query_id"], d) for d in [pos] + negs]
        states = [train.states(q, d) for q, d in pairs]
        ids, types, mask, values, roles, match = pair_batch(enc, pairs, args.max_length, cls_id, sep_id, states)
        layers, pooled = model(ids, types, mask)
        hidden = layers[args.tag_layer or -1]
        scores = model.score(pooled).view(len(batch), args.group)
        if args.graded:
            grades = torch.tensor([float(train.grade(q, d)) for q, d in pairs]).view(len(batch), args.group)
            target = F.softmax(grades * args.graded, dim=1)
            rank_loss = -(target * F.log_softmax(scores, dim=1)).sum(1).mean()
        else:
            rank_loss = F.cross_entropy(scores, torch.zeros(len(batch), dtype=torch.long))
        loss, parts = rank_loss, {"rank": rank_loss.item()}
        if "tokens" in aux:
            v = F.cross_entropy(model.value_head(hidden).flatten(0, 1), values.flatten(), ignore_index=-100)
            r = F.cross_entropy(model.role_head(hidden).flatten(0, 1), roles.flatten(), ignore_index=-100)
            loss = loss + args.aux_weight * (v + r)
            parts["value"], parts["role"] = v.item(), r.item()
        if "pair" in aux:
            s = F.cross_entropy(model.state_head(pooled).view(-1, 4), torch.tensor(states).flatten())
            loss = loss + args.aux_weight * s
            parts["state"] = s.item()
        if "match" in aux:
            m = F.cross_entropy(
                model.match_head(layers[args.match_layer or -1]).flatten(0, 1), match.flatten(), ignore_index=-100
            )
            loss = loss + args.aux_weight * m
            parts["match"] = m.item()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        window.append(parts)
        if (step + 1) % 100 == 0:
            mean = {k: round(sum(p[k] for p in window) / len(window), 4) for k in window[0]}
            row = {"step": step + 1, "seconds": round(time.time() - t0, 1), **mean}
            print(json.dumps(row), flush=True)
            log.write(json.dumps(row) + "\n")
            log.flush()
            window = []

    # Rerank BM25's top 100 of the test world.
    model.eval()
    run = {}
    with open(f"{work}/bm25.test.run") as f:
        for line in f:
            q, _, d, rank = line.split()[:4]
            if int(rank) <= 100:
                run.setdefault(q, []).append(d)
    tenc = Encoded(tokenizer, test)
    with torch.no_grad(), open(f"{work}/{args.out}.test.run", "w") as w:
        for q, docs in run.items():
            ids, types, mask, *_ = pair_batch(tenc, [(q, d) for d in docs], args.max_length, cls_id, sep_id)
            _, pooled = model(ids, types, mask)
            s = model.score(pooled).squeeze(-1).tolist()
            ranked = sorted(zip(docs, s), key=lambda x: -x[1])
            for i, (d, sc) in enumerate(ranked):
                w.write(f"{q} Q0 {d} {i + 1} {sc:.6f} {args.out}\n")
    torch.save(model.state_dict(), f"{work}/{args.out}.pt")
    print(f"wrote {work}/{args.out}.test.run in {time.time() - t0:.0f} s", flush=True)


if __name__ == "__main__":
    main()
