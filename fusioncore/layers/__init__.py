"""Building blocks of the transformer fusion methods: masks, attention, blocks, pooling."""
