"""ID-card stage: read the portrait side (and the emblem side) of a resident ID card from a phone photo."""

from pipelines.id_card.reader import IdCardReader, ReaderConfig
from pipelines.id_card.result import FIELDS, IdCardResult
from pipelines.id_card.validate import cross_check
from pipelines.idnumber import NumberCheck, check_number

__all__ = ["FIELDS", "IdCardReader", "IdCardResult", "NumberCheck", "ReaderConfig", "check_number", "cross_check"]
