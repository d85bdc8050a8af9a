"""The config layer: each component group's base schema and registry contract
(`components`), the typed and checked config (`settings`), a run's identity (`identity`) and
the resolvers that name run folders (`naming`).  Tables, evaluation and the engine read
configs through here; nothing here imports the engine."""
