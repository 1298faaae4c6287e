#!/usr/bin/env python3
"""Writes data/longlamp-sample/{abstract,review,writing}.jsonl.

A small dataset in the LongLaMP layout, written for this project (not taken
from LongLaMP): records {user key, input, output, profile}. Each record's
`input` is the task's input_template from data/templates.json filled with the
record's raw fields, so x is exactly what the C++ and Python sides build.
Run from anywhere: python3 tools/profile/make_longlamp_sample.py
"""
import json
import os

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TEMPLATES = json.load(open(os.path.join(ROOT, "data", "templates.json"), encoding="utf-8"))


def fill(template, fields):
    out, i = "", 0
    while i < len(template):
        if template[i] == "{" and "}" in template[i:]:
            j = template.index("}", i)
            out += fields[template[i + 1:j]]
            i = j + 1
        else:
            out += template[i]
            i += 1
    return out


def paper(pid, year, title, abstract):
    return {"title": title, "abstract": abstract, "year": year, "id": pid}


MIRA = [
    paper("a101", 2021, "Speculative Decoding with Draft Model Ensembles",
          "Autoregressive decoding with large language models is slow because every token needs a full forward pass. "
          "We propose to draft several tokens with an ensemble of small draft models and verify them in one pass of the "
          "target model. Accepted draft tokens are provably distributed as the target model would sample them, and the "
          "ensemble raises the acceptance rate by 18 percent over a single draft model."),
    paper("a102", 2020, "Sparse Attention Patterns for Long Document Summarization",
          "Full self-attention grows quadratically with input length, which limits summarization of long reports. We "
          "study block-local and strided sparse attention patterns and show that a learned mixture of both matches full "
          "attention on three summarization benchmarks while reading documents eight times longer."),
    paper("a103", 2022, "Quantization-Aware Distillation for On-Device Language Models",
          "Small language models on phones must fit in a few hundred megabytes. We combine knowledge distillation with "
          "quantization-aware training so that a 4-bit student keeps the fluency of its 16-bit teacher. On a mobile "
          "benchmark the student runs three times faster with a perplexity increase below two percent."),
    paper("a104", 2019, "Evaluating Factual Consistency in Abstractive Summaries",
          "Abstractive summarizers often state facts that the source does not support. We introduce a question answering "
          "based metric that checks each summary sentence against the source document and correlates better with human "
          "judgments of factual consistency than ROUGE or entailment classifiers."),
    paper("a105", 2021, "Early Exit Transformers for Low-Latency Inference",
          "Not every input needs every layer. We attach lightweight classifiers to intermediate transformer layers and "
          "let confident predictions exit early. Calibrated exit thresholds cut average inference latency by 40 percent "
          "with no loss in accuracy on text classification."),
    paper("a106", 2023, "Retrieval-Augmented Personal Assistants Under Privacy Constraints",
          "Personal assistants improve when they can read a user's history, but that history is private. We keep the "
          "retrieval index on the device and send only anonymized queries to the cloud model, and we measure how much "
          "personalization quality survives when the private context never leaves the phone."),
]

TOMASZ = [
    paper("b201", 2018, "Message Passing Neural Networks for Molecular Property Prediction",
          "We frame molecular property prediction as learning on graphs whose nodes are atoms and whose edges are bonds. "
          "A message passing neural network aggregates neighbor features over several rounds and predicts quantum "
          "chemical properties with chemical accuracy on eleven of thirteen targets."),
    paper("b202", 2021, "Graph Contrastive Learning with Adaptive Augmentation",
          "Contrastive learning on graphs depends on the augmentations used to create views. We drop edges and mask "
          "features adaptively, keeping the structurally important parts of the graph intact, and obtain node "
          "representations that outperform supervised baselines on citation and co-purchase graphs."),
    paper("b203", 2020, "Scalable Link Prediction on Billion-Edge Graphs",
          "Link prediction on industrial graphs must handle billions of edges. We partition the graph, train embeddings "
          "on each partition in parallel and exchange boundary nodes, which scales link prediction to a graph of two "
          "billion edges on a single machine with eight GPUs."),
    paper("b204", 2022, "Equivariant Graph Networks for Protein Docking",
          "Predicting how two proteins bind requires models that respect rotations and translations. We present an "
          "equivariant graph network that represents each protein as a graph of residues and predicts the docked pose "
          "in one shot, eighty times faster than search-based docking tools."),
    paper("b205", 2021, "Explaining Graph Neural Network Predictions with Subgraph Masks",
          "Graph neural networks are hard to interpret. We learn a soft mask over edges that keeps the prediction of a "
          "trained model unchanged while selecting as small a subgraph as possible, and show that the selected "
          "subgraphs match known functional groups in molecules."),
]

LUCIA = [
    paper("c301", 2020, "Federated Averaging with Client Drift Correction",
          "When client data is heterogeneous, local updates in federated averaging drift away from the global optimum. "
          "We add a control variate that estimates and removes this drift, and prove faster convergence for non-iid "
          "clients while keeping the communication cost of federated averaging."),
    paper("c302", 2022, "Differentially Private Fine-Tuning of Language Models",
          "Fine-tuning on private text can leak training examples. We show that parameter-efficient fine-tuning with "
          "differentially private stochastic gradient descent reaches accuracy close to non-private fine-tuning on "
          "language understanding tasks at a privacy budget of epsilon equal to eight."),
    paper("c303", 2019, "Secure Aggregation for Cross-Device Federated Learning",
          "A federated server should learn only the sum of client updates. We design a secure aggregation protocol "
          "based on pairwise masks that tolerates clients dropping out mid-round and adds less than two times "
          "communication overhead for cohorts of a thousand phones."),
    paper("c304", 2021, "Membership Inference Attacks on Personalized Recommenders",
          "Recommender systems trained on user histories may reveal whether a user was in the training data. We mount "
          "membership inference attacks on three personalized recommenders and find that popular items leak little "
          "while rare items in a profile expose membership with high confidence."),
    paper("c305", 2021, "Communication-Efficient Federated Learning via Sparse Updates",
          "Uploading full model updates from phones is expensive. Clients send only the largest coordinates of their "
          "update together with an error feedback buffer, reducing upload traffic by two orders of magnitude with "
          "little loss in final accuracy on next-word prediction."),
]

ABSTRACT = [
    ("Mira Okafor", {"title": "Verifying Draft Tokens from Small Language Models with a Large Model"},
     "Large language models generate text one token at a time, so latency grows with output length. We let a small "
     "language model propose a block of draft tokens and have the large model verify the whole block in a single "
     "forward pass, accepting the longest prefix it agrees with. The output distribution is unchanged, and on "
     "summarization and dialogue the method halves decoding time.",
     MIRA),
    ("Mira Okafor", {"title": "Keeping Personal Context on the Device for Private Text Generation"},
     "Personalized generation works best with access to a user's history, which users rarely want to upload. We split "
     "generation between a small on-device model that reads the private context and a cloud model that never sees "
     "it. The device proposes personalized drafts and the cloud model only checks them, which keeps most of the "
     "personalization gain while the private context stays on the phone.",
     MIRA),
    ("Tomasz Wierzbicki", {"title": "Graph Neural Networks for Predicting Reaction Yields of Molecules"},
     "Chemists plan syntheses by guessing which reactions will give a good yield. We encode the reactant molecules as "
     "graphs of atoms and bonds and train a message passing network to predict the yield of a reaction. On two "
     "high-throughput experiment datasets the model halves the error of fingerprint-based baselines.",
     TOMASZ),
    ("Lucia Ferreira", {"title": "Personalized Federated Learning with Local Adaptation Layers"},
     "A single global model serves heterogeneous clients poorly. Each client keeps a small adaptation layer that is "
     "trained only on its own data and never uploaded, while the shared layers are trained with federated averaging. "
     "The local layers improve accuracy for clients whose data differs most from the population.",
     LUCIA),
]


def review(overall, description, summary, text):
    return {"overall": overall, "description": description, "summary": summary, "reviewText": text}


COFFEE = [
    review(5.0, "Stainless steel burr coffee grinder with 18 grind settings", "Consistent grind, finally",
           "I switched from a blade grinder and the difference in the cup is obvious. The grind is even at every "
           "setting, the hopper holds enough beans for a week, and cleaning the burrs takes two minutes."),
    review(3.0, "Electric gooseneck kettle with temperature control", "Good kettle, flimsy lid",
           "The temperature control is accurate and the spout pours slowly enough for pour-over. The lid hinge feels "
           "cheap and started to wobble after a month of daily use."),
    review(4.0, "Cast iron skillet, 12 inch, pre-seasoned", "Heavy but worth it",
           "It holds heat beautifully and sears steak better than any pan I have owned. The factory seasoning was thin, "
           "so I added a few coats of oil before it became truly nonstick."),
    review(2.0, "Programmable drip coffee maker with thermal carafe", "Coffee is lukewarm",
           "The programmable timer works, but the coffee comes out barely warm and the thermal carafe does not keep it "
           "hot for more than an hour. I went back to my French press."),
    review(5.0, "French press, borosilicate glass, 34 oz", "Simple and sturdy",
           "Thick glass, a tight mesh filter and no grounds in my cup. It makes four full mugs and the frame protects "
           "the glass from knocks in the sink."),
]

HIKER = [
    review(5.0, "Waterproof hiking boots, men's, mid ankle", "Dry feet on every trail",
           "I wore these through creek crossings and a week of rain on the trail and my feet stayed dry. They needed "
           "almost no break-in and the ankle support saved me on loose rock."),
    review(4.0, "Ultralight two-person backpacking tent", "Light, roomy enough",
           "The tent weighs under two pounds and pitches in five minutes. Two people fit with gear in the vestibules, "
           "although condensation builds up on cold nights."),
    review(1.0, "Insulated stainless water bottle 32 oz", "Leaked in my pack",
           "The lid leaked the first time I carried the bottle on its side and soaked my sleeping bag. It keeps water "
           "cold, but a bottle that leaks cannot go in a backpack."),
    review(4.0, "Trekking poles with cork grips", "Knees thank me",
           "The cork grips stay comfortable in heat and the flick locks never slipped on steep descents. They are a "
           "little heavier than carbon poles but feel more solid."),
    review(3.0, "Headlamp, 400 lumens, rechargeable", "Bright but short battery",
           "The beam is bright and the red mode is handy in camp, but on the highest setting the battery lasts barely "
           "two hours, so I carry a spare power bank."),
]

LISTENER = [
    review(4.0, "Noise cancelling over-ear headphones", "Quiet flights",
           "The noise cancelling removes engine drone on flights and the ear cups stay comfortable for hours. The "
           "companion app is clunky, but the sound is warm and detailed."),
    review(2.0, "Wireless earbuds with charging case", "Case stopped charging",
           "They sounded fine for a few weeks, then the charging case stopped charging the left earbud. Support asked "
           "me to reset them three times before offering a replacement."),
    review(5.0, "E-reader with 6.8 inch glare-free display", "Reading in the sun",
           "The glare-free display is easy on the eyes even at the beach, the battery lasts weeks and the warm light "
           "makes reading in bed pleasant."),
    review(3.0, "Bluetooth portable speaker, waterproof", "Loud, thin bass",
           "It survived a drop in the pool and gets loud enough for a backyard, but the bass is thin and it disconnects "
           "when my phone is more than a room away."),
]

REVIEW = [
    ("A2KQ7R4VN8TZ1", {"overall": "4.0", "description": "Conical burr coffee grinder with timer",
                       "summary": "Great grind, noisy motor"},
     "The burrs give an even grind from espresso to French press, and the timer doses the same amount every morning. "
     "The motor is louder than my old grinder, so I wait until everyone is awake. Cleaning the chute takes a minute.",
     COFFEE),
    ("A3M9XW2PL5QE7", {"overall": "2.0", "description": "Women's waterproof hiking boots, low cut",
                       "summary": "Not waterproof after a month"},
     "They were comfortable out of the box and the grip is good on wet rock, but after a month on the trail water "
     "comes in at the toe seam during creek crossings. For boots sold as waterproof that is a deal breaker.",
     HIKER),
    ("A1Z8BDC6TY3NW", {"overall": "5.0", "description": "Over-ear wireless headphones with adaptive noise cancelling",
                       "summary": "Best headphones I have owned"},
     "The adaptive noise cancelling handles trains and open offices without pressure on the ears, the battery lasts "
     "a full week of commuting and the sound is balanced. They fold flat into a slim case.",
     LISTENER),
]


def post(summary, content):
    return {"summary": summary, "content": content}


BAKER = [
    post("My sourdough starter finally doubled after two weeks",
         "I almost gave up on my starter. Feeding it twice a day with whole wheat flour and keeping it on top of the "
         "fridge where it is warm finally made it double in six hours. The first loaf had an open crumb and a sour tang."),
    post("How I fixed dense banana bread",
         "My banana bread was always gummy in the middle. I stopped overmixing after adding the flour, used very ripe "
         "bananas and lowered the oven to 325 for a longer bake. Now it is moist and light."),
    post("Proofing bread in a cold apartment in winter",
         "My apartment is 60 degrees in winter, so my dough barely rose. Proofing it in the oven with only the light on "
         "and a pan of hot water below gives me a steady warm spot and loaves that rise on schedule."),
    post("First attempt at laminated croissant dough",
         "Laminating dough took all weekend. The butter broke through on the third fold because my kitchen was too "
         "warm, but chilling the dough between folds saved it and the croissants still had visible layers."),
]

RUNNER = [
    post("Ran my first half marathon after a knee injury",
         "A year ago I could not run a mile without knee pain. Physical therapy, strength work for my hips and a slow "
         "build of weekly mileage got me to the start line, and I finished my first half marathon without pain."),
    post("Lessons from a solo overnight hike in the rain",
         "It rained the whole night of my first solo overnight hike. Pack liners kept my sleeping bag dry, but I learned "
         "to pitch the tent on higher ground and to keep a dry pair of socks only for camp."),
    post("Switching to zero-drop running shoes",
         "I moved to zero-drop shoes over three months. My calves were sore for the first weeks, so I alternated with my "
         "old shoes and increased the distance slowly. My stride is shorter and lighter now."),
    post("How I pace long runs with a heart rate monitor",
         "I used to run every long run too fast. Keeping my heart rate in zone two felt painfully slow at first, but my "
         "pace at the same heart rate improved by a minute per mile over the season."),
]

PLANTS = [
    post("Rescued a monstera from root rot",
         "My monstera was yellowing and the soil smelled bad. I cut away the mushy roots, repotted it in a chunky mix "
         "with bark and perlite and watered only when the top two inches were dry. It put out a new leaf a month later."),
    post("Grow lights for a north-facing apartment",
         "My north-facing windows get almost no direct sun. Two full-spectrum LED grow lights on a twelve hour timer "
         "turned my leggy plants compact again, and my fiddle leaf fig finally stopped leaning toward the window."),
    post("Propagating pothos in water vs soil",
         "I rooted ten pothos cuttings, half in water and half straight in soil. The water cuttings rooted faster, but "
         "the soil cuttings grew faster once they were established and never had transplant shock."),
    post("Fungus gnats finally gone",
         "Fungus gnats took over my plant shelf. Letting the soil dry out, bottom watering and sticky traps for two "
         "weeks got rid of them without any sprays."),
]

WRITING = [
    ("quietbaker", {"summary": "Baking sourdough bread at high altitude"},
     "We moved to a town at 7000 feet and my sourdough spread flat in the oven. I now use a little less starter, "
     "add more water because the flour dries out faster, and shorten the final proof. Baking covered for longer also "
     "helped the crust. The loaves are tall again.",
     BAKER),
    ("trailmix_tom", {"summary": "Training for a marathon with a knee brace"},
     "After my half marathon I signed up for a full one. My physical therapist suggested a knee brace for the long "
     "runs while I keep building strength. I run my long runs slowly, by heart rate, and only add a few miles each "
     "week. So far the knee has held up.",
     RUNNER),
    ("pixelgardener", {"summary": "My fiddle leaf fig is dropping leaves under a grow light"},
     "My fiddle leaf fig started dropping its lower leaves after I moved it under a grow light. It turns out I had "
     "the light too close and was watering on a schedule instead of checking the soil. I raised the light and now "
     "water only when the soil is dry, and the drop has stopped.",
     PLANTS),
]


def write(task, rows):
    key = TEMPLATES[task]["user_key"]
    path = os.path.join(ROOT, "data", "longlamp-sample", task + ".jsonl")
    with open(path, "w", encoding="utf-8") as f:
        for user, raw, output, profile in rows:
            record = {key: user, "input": fill(TEMPLATES[task]["input_template"], raw), "output": output,
                      "profile": profile}
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
    print(path, len(rows), "records", sum(len(r[3]) for r in rows), "profile entries")


if __name__ == "__main__":
    write("abstract", ABSTRACT)
    write("review", REVIEW)
    write("writing", WRITING)
