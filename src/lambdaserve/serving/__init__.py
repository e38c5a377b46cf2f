"""The predict function's library (ships in the serving layer): the Powertools routes, the
request layouts and their validation against the manifest's feature spec, the engines, the
golden check, the OpenAPI document, the function's settings, data capture, and the shadow's
mirror, replay and switch. Imports only `shared` and the root contracts.

Modules are imported by name (`lambdaserve.serving.predictor`); this file stays empty so the
functions that need none of numpy's weight pay nothing for it."""
