"""The lab: train dense (Llama) and MoE (Mixtral) models as plain Hugging Face folders, and ladders of them.

tokenizer (byte-level BPE) -> data (memory-mapped token splits) -> configs (shapes) -> run (checks,
folder, record) -> train (the loop) with moe (fast Mixtral block, auxiliary losses), flops, checkpoint,
progress; record (JSON + store tables); memorise (Carlini-style); sweep (ladders); curate (its own package).
"""
