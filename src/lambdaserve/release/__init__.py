"""Function versions and the alias `live`: the one mover of traffic. The deployer and its
phases, function versions and their golden check, the records (history and ledger), the
live SSM parameters, provisioned-concurrency handover, the trust gate, judged rollouts,
shadow control, teardown, and the errors a release refuses with. Imports `judge`,
`registry` and below."""
