"""`python -m service.ingest ...`: the ingest command without the rest of the CLI."""

from service.ingest.startup import ImportsWithoutCollection

with ImportsWithoutCollection():
    from service.ingest.command import ingest

if __name__ == "__main__":
    ingest(prog_name="mailflow ingest")
