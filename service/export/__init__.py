"""Exports of an answer into other formats (a CloudFormation template): pure functions of its JSON."""
