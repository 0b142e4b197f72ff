"""Vector stores: LanceDB (embedded, default) and Qdrant (local path or server), behind one interface."""
