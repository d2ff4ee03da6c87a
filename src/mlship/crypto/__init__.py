"""Cryptographic primitives: authenticated encryption of files and signatures of content hashes.

A leaf: nothing here reads settings, touches a workspace or imports the stores, so the artifact
stores can seal and sign with it while key storage (``mlship.security``) sits above them.
"""
