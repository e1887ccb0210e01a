"""Domain records and pure decision logic: no Kafka, Faust or network imports here."""
