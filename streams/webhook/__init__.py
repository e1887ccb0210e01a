"""The webhook receiver: Exstream delivery callbacks in, ``DeliveryEvent`` records out on Kafka.

``events.py`` holds the pure logic (payload validation, conversion, the replay rule),
``metrics.py`` the Prometheus counters, ``server.py`` the aiohttp service and its Kafka sink,
``cli.py`` the ``air-exstream webhook`` command.
"""
