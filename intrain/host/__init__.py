"""The host side of the training engine, shared by the simulated engine and the boards: the
driver that moves matrices over a transport (:mod:`.driver`), the software twin of the engine's
tensor CRCs (:mod:`.crc`) and the trainer that checks every step against the golden model
(:mod:`.checked`)."""
