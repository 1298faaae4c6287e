#!/usr/bin/env python3
"""MiniLaMP: a synthetic personalized generation benchmark in the LongLaMP layout.

Each synthetic user owns private facts (pet, friend, home town, favourite
place, favourite brand and the product they own of it, a sign-off phrase) and
habitual words (an opener and an intensifier).  Their ~8 past texts (the
profile) mention the facts in several phrasings.  Two tasks:

  review:  product description + overall rating + a multi-clause summary ->
           review.  The summary names 3-4 attributes through paraphrases, with
           negation ("did not disappoint") and cross references ("the same
           goes for the cost", "but not the fit"); the review must state each
           attribute's verdict with its canonical name, in order, and the
           counts of liked / disliked attributes.
  writing: a post summary listing 3-4 outings (paraphrased, negated, cross
           referenced) -> post; the post must list the outings made and missed
           with their counts.

Reference outputs also mention the user's private facts, so ROUGE rewards
both reasoning and personalization.  Every record carries exact checks:
  "facts": the private strings the reference contains (names, sign-off),
  "constraints": the verdicts / lists / counts the output must state.
tools/minilamp/score.py scores generated texts against them.

Usage: python3 tools/minilamp/generate.py --seed S --users N --out DIR
           [--split test|train] [--per-user K] [--demo M]
writes DIR/review.jsonl and DIR/writing.jsonl (one record per line; with
--demo also DIR/demo.jsonl, M records of both tasks).  The shipped test split
is `--seed 1 --users 250 --demo 4`.  Test and
train users come from disjoint random streams and disjoint ids.
"""
import argparse
import json
import os
import random

PET_TYPES = ["dog", "cat", "parrot", "rabbit", "hamster", "turtle", "ferret", "goldfish"]
PET_NAMES = """Biscuit Pepper Mochi Ziggy Noodle Waffles Pickle Clover Juniper Bramble Tofu Olive
Pretzel Maple Nacho Gizmo Sprout Marble Cricket Domino Pumpkin Toffee Rascal Bean Figaro Luna
Snickers Truffle Pippin Nugget Dumpling Sox Ember Wasabi Basil Chester Cosmo Dottie Fudge Gus
Hazel Indigo Jasper Kiwi Lentil Milo Nimbus Oreo Poppy Quincy Rocket Sable Tango Umber Vesper
Willow Yoyo Zorro Acorn Bubbles Cinder Dusty Echo Fennel Ginger Honey Igloo Jellybean Kipper""".split()
FRIEND_NAMES = """Marta Olek Priya Tomasz Ines Rafael Keiko Dmitri Amara Lucas Sofia Henrik Nadia
Bruno Leila Mateo Freya Omar Greta Kofi Elena Tariq Hana Viktor Maya Sven Zara Diego Ingrid Ravi
Clara Felix Aisha Jonas Mira Pablo Yuki Anton Lina Marco Noor Oskar Rosa Emil Dalia Hugo Irina
Kai Leona Nikolai Petra Samir Tessa Vito Wanda Xavier Yara Zeno Alma Boris Celia Dario""".split()
TOWNS = """Ashford Brindlewick Carrow Dunmere Elstow Fenwick Glenholt Harwick Ivybridge Jarrow
Kelmscott Larkhill Marwood Northam Oakhurst Penrith Quarley Redmoor Saltash Thornby Upwell Varley
Westbury Yarmouth Alderney Bexley Cobham Dunster Eskdale Frome Goring Hexham Ilkley Kendal Ludlow
Malton Nantwich Otley Padstow Ripon Selby Tetbury Ulverston Wetherby Axbridge Bampton""".split()
PLACES = ["Luna Diner", "Cafe Orbit", "the Blue Heron", "Rosie's Grill", "the Copper Kettle",
          "Pine Street Deli", "the Salty Dog", "Mango Tree", "the Old Mill", "Nook Bakery",
          "the Red Lantern", "Harbor Noodles", "the Green Fig", "Velvet Espresso", "the Tin Cup",
          "Marigold Cafe", "the Lazy Otter", "Sunset Tacos", "the Brass Owl", "Corner Pho",
          "the Yellow Door", "Kettle and Crumb", "the Wild Olive", "Moonbeam Pizza",
          "the Little Fox", "Saffron House", "the Hungry Hare", "Juniper Bistro",
          "the Sleepy Bear", "Paprika Kitchen", "the Stone Oven", "Cedar Tea Room"]
BRANDS = """Voltra Kestrel Nimbra Orvex Lumio Tessaro Brevik Quilla Zentro Arvio Calyx Dorne Fjord
Helix Ixia Jubra Korra Melda Novix Opalo Pyra Quorn Rivo Solace Tamar Umbra Vanta Wexo Yonder Zephra
Altura Bolt Cirra Delto Evra Fenna Grivo Hollis""".split()
SIGNOFFS = ["Stay cozy, friends.", "That is my two cents.", "Keep it simple.", "Onward and upward.",
            "Peace out, folks.", "Make of that what you will.", "Cheers from my couch.",
            "Happy hunting, everyone.", "Over and out.", "Until next time, stay curious.",
            "Take it easy out there.", "Rant over, thanks for reading.", "Be kind to your wallet.",
            "Catch you on the flip side.", "Hope this helps someone.", "Keep calm and shop smart.",
            "Mind how you go.", "Live and learn.", "Enough said.", "Stay hungry, friends.",
            "Back to my tea now.", "Ciao for now.", "Vote with your feet.", "So it goes.",
            "Trust your gut.", "Tomorrow is another day.", "Chin up, everyone.",
            "File that under lessons learned.", "Take care and buy wisely.", "Lights out, goodnight."]
OPENERS = ["Honestly", "Well", "So", "Okay", "Frankly", "Alright", "Look", "Right", "Truthfully", "Listen"]
INTENSIFIERS = ["really", "truly", "super", "quite", "very", "pretty", "genuinely", "seriously"]
PET_ACTS = ["sat next to me the whole time", "kept sniffing the box", "ignored it completely",
            "tried to steal the wrapping", "slept through the whole test", "watched me unpack it",
            "hid under the sofa", "seemed to approve"]
NUMBERS = ["zero", "one", "two", "three", "four"]

# attribute -> paraphrases usable after "the" (first one is the canonical name)
ATTRS = {
    "sound": ["sound", "audio", "sound quality"],
    "battery": ["battery", "battery life", "charge"],
    "comfort": ["comfort", "fit", "feel"],
    "price": ["price", "cost", "value"],
    "design": ["design", "look", "styling"],
    "noise": ["noise", "hum", "loudness"],
    "speed": ["speed", "pace", "heating time"],
    "size": ["size", "capacity", "room inside"],
    "zipper": ["zipper", "zip", "closure"],
    "straps": ["straps", "shoulder straps", "harness"],
    "brightness": ["brightness", "light output", "glow"],
    "cord": ["cord", "cable", "wire"],
    "screen": ["screen", "display", "panel"],
    "grip": ["grip", "handle", "hold"],
    "smell": ["smell", "scent", "fragrance"],
    "taste": ["taste", "flavor", "aftertaste"],
    "durability": ["durability", "build", "sturdiness"],
    "packaging": ["packaging", "box", "wrapping"],
}
CATEGORIES = {
    "headphones": ["sound", "battery", "comfort", "price"],
    "kettle": ["speed", "noise", "design", "price"],
    "backpack": ["straps", "zipper", "size", "durability"],
    "desk lamp": ["brightness", "cord", "design", "price"],
    "phone": ["screen", "battery", "speed", "price"],
    "coffee": ["taste", "smell", "price", "packaging"],
    "hand cream": ["smell", "size", "price", "packaging"],
    "knife": ["grip", "durability", "design", "price"],
    "speaker": ["sound", "battery", "size", "durability"],
    "blender": ["speed", "noise", "durability", "price"],
    "tablet": ["screen", "battery", "speed", "design"],
    "shampoo": ["smell", "packaging", "price", "size"],
}
PRODUCT_ADJS = ["compact", "wireless", "classic", "portable", "stainless", "foldable", "deluxe",
                "lightweight", "premium", "budget", "slim", "rugged"]
POS_ATTR = ["the {p} was great", "the {p} was not bad", "the {p} did not disappoint",
            "I loved the {p}", "no complaints about the {p}"]
NEG_ATTR = ["the {p} was poor", "the {p} was not great", "the {p} let me down",
            "I did not like the {p}", "the {p} could be better"]

# outing -> paraphrases (first is canonical)
OUTINGS = {
    "the hike": ["the hike", "the trail walk", "the mountain walk"],
    "the museum": ["the museum", "the gallery", "the exhibit"],
    "the lake": ["the lake", "the swim spot", "the water"],
    "the market": ["the market", "the stalls", "the bazaar"],
    "the concert": ["the concert", "the gig", "the show"],
    "the picnic": ["the picnic", "the outdoor lunch", "the lunch outside"],
    "the zoo": ["the zoo", "the animal park", "the wildlife park"],
    "the castle": ["the castle", "the old fort", "the ruins"],
    "the fair": ["the fair", "the carnival", "the funfair"],
    "the beach": ["the beach", "the shore", "the coast"],
    "the cinema": ["the cinema", "the movies", "the film"],
    "the bakery": ["the bakery", "the bread shop", "the pastry place"],
    "the garden": ["the garden", "the flower beds", "the greenhouse"],
    "the bowling alley": ["the bowling alley", "the lanes", "the bowling"],
}
THEMES = ["Weekend trip", "Sunday outing", "Day off", "Holiday recap", "Long weekend",
          "Saturday plans", "Road trip", "Family visit"]
POS_OUT = ["we made it to {p}", "we did not miss {p}", "we checked out {p}", "{p} was a yes",
           "we got to {p}"]
NEG_OUT = ["we skipped {p}", "we never got to {p}", "{p} was not on", "we did not make it to {p}",
           "{p} was a no"]
SAME = ["and the same goes for {p}", "same story with {p}"]
OPPOSITE = ["but not {p}", "unlike {p}"]


def cap(s):
    return s[0].upper() + s[1:]


def join_list(items):
    if len(items) == 1:
        return items[0]
    return ", ".join(items[:-1]) + " and " + items[-1]


def make_user(rng, uid):
    return {
        "id": uid,
        "pet_type": rng.choice(PET_TYPES),
        "pet": rng.choice(PET_NAMES),
        "friend": rng.choice(FRIEND_NAMES),
        "town": rng.choice(TOWNS),
        "place": rng.choice(PLACES),
        "brand": rng.choice(BRANDS),
        "owned": rng.choice(list(CATEGORIES)),
        "signoff": rng.choice(SIGNOFFS),
        "opener": rng.choice(OPENERS),
        "intens": rng.choice(INTENSIFIERS),
        "pet_act": rng.choice(PET_ACTS),
    }


def summary_clauses(rng, keys, paras, pos_forms, neg_forms, verdicts):
    """Clauses naming each key through a paraphrase; some are relative to the previous one."""
    clauses = []
    for i, k in enumerate(keys):
        p = rng.choice(paras[k])
        if i > 0 and rng.random() < 0.35:
            form = rng.choice(SAME if verdicts[k] == verdicts[keys[i - 1]] else OPPOSITE)
            clauses.append(form.format(p=("the " + p) if paras is ATTRS else p))
        else:
            clauses.append(rng.choice(pos_forms if verdicts[k] else neg_forms).format(p=p))
    out = clauses[0]
    for c in clauses[1:]:
        sep = ", " if c.startswith(("and ", "but ", "unlike ", "same ")) or rng.random() < 0.5 else "; "
        out += sep + c
    return cap(out)


def pet_sentence(rng, u, canonical):
    t, n, a = u["pet_type"], u["pet"], (u["pet_act"] if rng.random() < 0.6 else rng.choice(PET_ACTS))
    forms = [f"My {t} {n} {a}.", f"{n}, my {t}, {a}.", f"Even {n} (my {t}) {a}.", f"Our {t} {n} {a}."]
    return forms[0] if canonical else rng.choice(forms)


def brand_sentence(rng, u, canonical):
    b, o = u["brand"], u["owned"]
    forms = [f"Still, nothing beats my {b} {o}.", f"I still prefer my old {b} {o}.",
             f"My {b} {o} remains my favourite."]
    return forms[0] if canonical else rng.choice(forms)


def make_review(rng, u, canonical):
    cat = rng.choice(list(CATEGORIES))
    desc = f"{rng.choice(PRODUCT_ADJS)} {cat}"
    k = rng.choice([3, 4])
    keys = rng.sample(CATEGORIES[cat], k)
    verdicts = {a: rng.random() < 0.5 for a in keys}
    summary = summary_clauses(rng, keys, ATTRS, POS_ATTR, NEG_ATTR, verdicts)
    g = sum(verdicts.values())
    rating = 1 + round(4 * g / k)
    mood = {5: f"{u['intens']} worth it", 4: f"{u['intens']} good", 3: "just okay",
            2: f"{u['intens']} disappointing", 1: "a total letdown"}[rating]
    parts = [f"{u['opener']}, this {cat} is {mood}."]
    for a in keys:
        parts.append(f"The {a} was {'great' if verdicts[a] else 'poor'}.")
    parts.append(f"I liked {NUMBERS[g]} and disliked {NUMBERS[k - g]}.")
    parts.append(pet_sentence(rng, u, canonical))
    parts.append(brand_sentence(rng, u, canonical))
    parts.append(u["signoff"])
    fields = {"overall": f"{rating}.0", "description": desc, "summary": summary,
              "reviewText": " ".join(parts)}
    constraints = {"verdicts": [[a, "great" if verdicts[a] else "poor"] for a in keys],
                   "liked": g, "disliked": k - g}
    return fields, constraints


def outing_sentence(rng, u, canonical):
    pl = u["place"]
    forms = [f"Then we had dinner at {pl}.", f"Afterwards we ended up at {pl}, as always.",
             f"We finished at {pl}, my favourite spot."]
    return forms[0] if canonical else rng.choice(forms)


def trip_opening(rng, u, canonical):
    t, f = u["town"], u["friend"]
    forms = [f"I went back to {t} with my friend {f}.", f"{f} and I spent the day back home in {t}.",
             f"My best friend {f} came along to my home town {t}."]
    return forms[0] if canonical else rng.choice(forms)


def make_post(rng, u, canonical):
    k = rng.choice([3, 4])
    keys = rng.sample(list(OUTINGS), k)
    done = {o: rng.random() < 0.5 for o in keys}
    clauses = summary_clauses(rng, keys, OUTINGS, POS_OUT, NEG_OUT, done)
    summary = rng.choice(THEMES) + ": " + clauses[0].lower() + clauses[1:]
    made = [o for o in keys if done[o]]
    missed = [o for o in keys if not done[o]]
    parts = [f"{u['opener']}, what a {u['intens']} fun weekend.", trip_opening(rng, u, canonical)]
    parts.append(f"We made it to {NUMBERS[len(made)]}" + (f": {join_list(made)}." if made else "."))
    parts.append(f"We missed {NUMBERS[len(missed)]}" + (f": {join_list(missed)}." if missed else "."))
    parts.append(outing_sentence(rng, u, canonical))
    parts.append(u["signoff"])
    fields = {"summary": summary, "content": " ".join(parts)}
    constraints = {"made": made, "missed": missed}
    return fields, constraints


TEMPLATES_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "data", "templates.json")


def load_templates():
    with open(TEMPLATES_PATH) as f:
        return json.load(f)


def fill(template, fields):
    out = template
    for k, v in fields.items():
        out = out.replace("{" + k + "}", str(v))
    return out


def make_records(rng, u, task, n_profile, per_user, tmpl):
    """per_user target records sharing one profile of n_profile past texts."""
    gen = make_review if task == "review" else make_post
    profile = []
    for i in range(n_profile):
        fields, _ = gen(rng, u, canonical=rng.random() < 0.4)
        entry = dict(fields)
        entry["id"] = f"{u['id']}-{task}-p{i}"
        profile.append(entry)
    recs = []
    for j in range(per_user):
        fields, cons = gen(rng, u, canonical=True)
        out_key = "reviewText" if task == "review" else "content"
        in_fields = {k: v for k, v in fields.items() if k != out_key}
        if task == "review":
            facts = [u["pet"], u["brand"], u["signoff"]]
        else:
            facts = [u["friend"], u["town"], u["place"], u["signoff"]]
        rec = {"id": f"{task}-{u['id']}-{j}", "task": task, tmpl[task]["user_key"]: u["id"],
               "input": fill(tmpl[task]["input_template"], in_fields),
               "output": fields[out_key], "profile": profile}
        rec.update(in_fields)
        rec["facts"] = facts
        rec["constraints"] = cons
        recs.append(rec)
    return recs


def generate(seed, users, split, per_user, n_profile=8):
    tmpl = load_templates()
    rng = random.Random(f"minilamp-{split}-{seed}")
    out = {"review": [], "writing": []}
    for i in range(users):
        u = make_user(rng, f"{split}{seed}u{i:05d}")
        for task in ("review", "writing"):
            out[task].extend(make_records(rng, u, task, n_profile, per_user, tmpl))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--users", type=int, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--split", choices=["test", "train"], default="test")
    ap.add_argument("--per-user", type=int, default=None,
                    help="target records per user and task (default 1 for test, 12 for train)")
    ap.add_argument("--demo", type=int, default=0, help="also write DIR/demo.jsonl with this many records")
    a = ap.parse_args()
    per_user = a.per_user if a.per_user is not None else (1 if a.split == "test" else 12)
    data = generate(a.seed, a.users, a.split, per_user)
    os.makedirs(a.out, exist_ok=True)
    for task, recs in data.items():
        with open(os.path.join(a.out, f"{task}.jsonl"), "w") as f:
            for r in recs:
                f.write(json.dumps(r, ensure_ascii=True) + "\n")
        print(f"{a.out}/{task}.jsonl: {len(recs)} records")
    if a.demo:
        with open(os.path.join(a.out, "demo.jsonl"), "w") as f:
            for task in ("review", "writing"):
                for r in data[task][:a.demo // 2 + (a.demo % 2 if task == "review" else 0)]:
                    f.write(json.dumps(r, ensure_ascii=True) + "\n")
        print(f"{a.out}/demo.jsonl: {a.demo} records (the first of each task, tagged with \"task\")")


if __name__ == "__main__":
    main()
