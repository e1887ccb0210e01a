"""``air-exstream dlq list|replay``.

Replay re-publishes the original key, value and headers of selected dead letters to their source
topic, with a ``dlq-replay-of`` header naming the dead letter. Replaying twice is safe for the
composition path: communication ids are derived from the event id, so the same event produces
the same communication and the sink discards the second one. A letter that could not hold its
whole original (too large, see :mod:`streams.deadletter.letters`) is skipped with a message naming
the source coordinates where the original is: it is never re-published without its value.
"""

from __future__ import annotations

import click
from confluent_kafka import Producer

from streams.codec import Codecs, DecodeError
from streams.config import resolve_kafka_settings
from streams.deadletter.letters import H_OMITTED, dlq_topic, replay_headers
from streams.domain.records import DeadLetter
from streams.topic_reader import read_topic
from topology.model import DLQ_SUFFIX, load_topology


@click.group()
def dlq() -> None:
    """Dead letters: list them, replay them after a fix."""


def _dlq_topics(source: str | None, prefix: str) -> list[str]:
    if source:
        return [dlq_topic(source)]
    return [n for n in load_topology(prefix=prefix).names if n.endswith(DLQ_SUFFIX)]


@dlq.command("list")
@click.option("--source", default=None, help="Only this source topic's dead letters.")
@click.option("--prefix", default="", help="Topic name prefix of the topology.")
@click.option("--bootstrap-servers", default=None)
def list_(source: str | None, prefix: str, bootstrap_servers: str | None) -> None:
    """Every dead letter with its source coordinates and reason."""
    settings = resolve_kafka_settings(bootstrap_servers)
    codecs = Codecs.from_settings(settings)
    count = 0
    for topic in _dlq_topics(source, prefix):
        codec = codecs.for_topic(topic, DeadLetter)
        for raw in read_topic(
            settings.require_bootstrap(), topic, client_config=settings.confluent_config()
        ):
            try:
                letter = codec.decode(raw.value)
            except DecodeError as exc:
                click.echo(f"{topic}/{raw.partition}/{raw.offset}: undecodable dead letter: {exc}")
                continue
            count += 1
            click.echo(
                f"{topic}/{raw.partition}/{raw.offset}  from {letter.source_topic}/"
                f"{letter.source_partition}/{letter.source_offset}  {letter.error_type}: "
                f"{letter.reason}"
            )
    click.echo(f"{count} dead letter(s)")


@dlq.command()
@click.option("--source", required=True, help="Source topic whose dead letters to replay.")
@click.option("--error-type", default=None, help="Only dead letters with this error type.")
@click.option("--offset", "offsets", multiple=True, type=int, help="Only these DLQ offsets.")
@click.option("--dry-run", is_flag=True, help="Show what would be replayed.")
@click.option("--bootstrap-servers", default=None)
def replay(
    source: str,
    error_type: str | None,
    offsets: tuple[int, ...],
    dry_run: bool,
    bootstrap_servers: str | None,
) -> None:
    """Re-publish dead letters' original records to their source topic."""
    settings = resolve_kafka_settings(bootstrap_servers)
    topic = dlq_topic(source)
    codec = Codecs.from_settings(settings).for_topic(topic, DeadLetter)
    producer = Producer(
        {
            **settings.confluent_config(),
            "acks": "all",
            "enable.idempotence": True,
            # the Java client's partitioner: a replayed record lands where its key belongs (the
            # worker dead-letters customer-keyed records in any other partition)
            "partitioner": "murmur2_random",
        }
    )
    replayed = skipped = 0
    for raw in read_topic(
        settings.require_bootstrap(), topic, client_config=settings.confluent_config()
    ):
        letter = codec.decode(raw.value)
        if error_type and letter.error_type != error_type:
            continue
        if offsets and raw.offset not in offsets:
            continue
        if H_OMITTED in letter.original_headers:
            skipped += 1
            click.echo(
                f"cannot replay {topic}/{raw.partition}/{raw.offset}: the letter does not hold "
                f"the whole original ({letter.original_headers[H_OMITTED]}); it is at "
                f"{letter.source_topic}/{letter.source_partition}/{letter.source_offset}"
            )
            continue
        replayed += 1
        click.echo(
            f"{'would replay' if dry_run else 'replay'} {topic}/{raw.partition}/{raw.offset}"
        )
        if not dry_run:
            producer.produce(
                letter.source_topic,
                key=letter.original_key,
                value=letter.original_value,
                headers=list(replay_headers(letter, topic, raw.partition, raw.offset)),
            )
    if producer.flush(60):
        raise click.ClickException("some replayed records were not delivered")
    click.echo(f"{replayed} dead letter(s) {'selected' if dry_run else 'replayed'}")
    if skipped:
        click.echo(f"{skipped} dead letter(s) skipped: original too large to have been copied")
