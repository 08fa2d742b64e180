#!/usr/bin/env python3
"""Merge qrels splits of several BEIR folders into one BEIR folder, ids prefixed by a name.

Training one teacher on two datasets (WikiQA `train-all` and SelQA `test`, issue 17) needs one
folder that `adam negatives` and `adam teacher train` can read. Each part is NAME=DIR:SPLIT; its
documents and queries get the ids `NAME:<id>`, and its qrels split goes into OUT's
`qrels/<--split>.tsv`. Only the queries of the given splits are written; every document of each
corpus is (they are the mined negatives' pool). Nothing is written over: OUT must not exist.

    python3 scripts/merge_beir.py /tmp/wikiqa-selqa --split train \\
        --part wikiqa=../shared/data/wikiqa:train-all --part selqa=../shared/data/selqa:test

Standard library only. Errors name the file and line.
"""
import argparse
import csv
import json
import os
import sys
import tempfile


def fail(msg):
    sys.exit(f"merge_beir: {msg}")


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                fail(f"{path}:{n}: not JSON: {e}")
            if not isinstance(rec, dict) or not isinstance(rec.get("_id"), str):
                fail(f"{path}:{n}: field `_id`: missing or not a string")
            yield rec


def read_qrels(path):
    with open(path, encoding="utf-8", newline="") as f:
        for n, row in enumerate(csv.reader(f, delimiter="\t"), 1):
            if n == 1 and row[:1] == ["query-id"]:
                continue
            if len(row) != 3:
                fail(f"{path}:{n}: expected query-id, corpus-id, score; found {len(row)} fields")
            try:
                yield row[0], row[1], int(row[2])
            except ValueError:
                fail(f"{path}:{n}: field `score`: `{row[2]}` is not an integer")


def parse_part(text):
    name, sep, rest = text.partition("=")
    directory, sep2, split = rest.rpartition(":")
    if not sep or not sep2 or not name or not directory or not split:
        fail(f"--part `{text}`: expected NAME=DIR:SPLIT")
    if ":" in name:
        fail(f"--part `{text}`: NAME may not contain `:`")
    return name, directory, split


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out")
    p.add_argument("--part", action="append", required=True, help="NAME=DIR:SPLIT, repeated")
    p.add_argument("--split", default="train", help="name of OUT's qrels split")
    args = p.parse_args()
    if os.path.exists(args.out):
        fail(f"{args.out} exists; choose a new folder")
    parts = [parse_part(t) for t in args.part]
    if len({name for name, _, _ in parts}) != len(parts):
        fail("two parts share a NAME")

    # Written in a temporary folder beside OUT and renamed at the end: no half-merged folder.
    parent = os.path.dirname(os.path.abspath(args.out))
    tmp = tempfile.mkdtemp(prefix=".merge_beir.", dir=parent)
    os.mkdir(os.path.join(tmp, "qrels"))
    counts = []
    with open(os.path.join(tmp, "corpus.jsonl"), "w", encoding="utf-8") as corpus, \
            open(os.path.join(tmp, "queries.jsonl"), "w", encoding="utf-8") as queries, \
            open(os.path.join(tmp, "qrels", f"{args.split}.tsv"), "w", encoding="utf-8") as qrels:
        qrels.write("query-id\tcorpus-id\tscore\n")
        for name, directory, split in parts:
            judged = list(read_qrels(os.path.join(directory, "qrels", f"{split}.tsv")))
            wanted = {q for q, _, _ in judged}
            docs = 0
            for rec in read_jsonl(os.path.join(directory, "corpus.jsonl")):
                rec["_id"] = f"{name}:{rec['_id']}"
                corpus.write(json.dumps(rec, ensure_ascii=False) + "\n")
                docs += 1
            found = set()
            for rec in read_jsonl(os.path.join(directory, "queries.jsonl")):
                if rec["_id"] in wanted:
                    found.add(rec["_id"])
                    rec["_id"] = f"{name}:{rec['_id']}"
                    queries.write(json.dumps(rec, ensure_ascii=False) + "\n")
            missing = wanted - found
            if missing:
                fail(f"{directory}/qrels/{split}.tsv: query `{sorted(missing)[0]}` is not in {directory}/queries.jsonl")
            for q, d, g in judged:
                qrels.write(f"{name}:{q}\t{name}:{d}\t{g}\n")
            counts.append(f"{name}: {len(wanted)} queries, {len(judged)} judgements, {docs} documents")
    os.rename(tmp, args.out)
    for line in counts:
        print(line)


if __name__ == "__main__":
    main()
