"""Body sites accepted by the severity endpoints, their names and scoring regions.

Every site maps to one of the four PASI/EASI regions. The assignments follow the
region definitions of the scores themselves:

* the head region includes the neck, scalp, ears and face (Fredriksson & Pettersson,
  Dermatologica 1978;157:238-244), so the perioral area and the tongue are head sites;
  PASI and EASI do not grade mucosa, but a tongue image still belongs to the head;
* the trunk includes the axillae and the genital area, and the buttocks belong to the
  lower limbs (EASI user guide, Hanifin et al., Exp Dermatol 2001;10:11-18, and the
  HOME EASI guidance; PASI separates trunk and legs at the groin), so ``genital`` is a
  trunk site;
* ``nails`` has no region of its own in either score. It is assigned to the upper limbs
  because the nails that are photographed and graded (NAPSI) are usually fingernails,
  and the hands belong to the upper limbs.

Only scalp-hair-bearing head sites carry a SALT quadrant (Olsen et al., J Am Acad
Dermatol 2004;51:440-447): ``headTop`` and ``scalp`` are the vertex (top of the head,
frontal scalp included), the sides are the left and right profiles and ``headBack`` is
the posterior scalp. The face (``headFront``) bears no scalp hair.

This module is pure data and standard library so that the API process can import it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal

Region = Literal["head", "upperLimbs", "trunk", "lowerLimbs"]
SaltQuadrant = Literal["vertex", "left", "right", "back"]

LANGUAGES: tuple[str, ...] = ("en_GB", "es_ES", "fr_FR", "de_DE")
REGIONS: tuple[Region, ...] = ("head", "upperLimbs", "trunk", "lowerLimbs")


@dataclass(frozen=True)
class BodySite:
    """One body site code with its localised names and scoring attributes."""

    code: str
    names: Mapping[str, str]
    region: Region
    hair_bearing: bool = False
    salt_quadrant: SaltQuadrant | None = None


# code, (en_GB, es_ES, fr_FR, de_DE), region, hair-bearing, SALT quadrant
_SITES: tuple[tuple[str, tuple[str, str, str, str], Region, bool, SaltQuadrant | None], ...] = (
    ("headFront", ("Head, front (face)", "Cabeza, parte anterior (cara)", "Tête, face antérieure (visage)", "Kopf, vorne (Gesicht)"), "head", False, None),
    ("headBack", ("Head, back", "Cabeza, parte posterior", "Tête, face postérieure", "Kopf, hinten"), "head", True, "back"),
    ("headTop", ("Head, top", "Cabeza, parte superior", "Tête, sommet du crâne", "Kopf, oben (Scheitel)"), "head", True, "vertex"),
    ("headLeft", ("Head, left side", "Cabeza, lado izquierdo", "Tête, côté gauche", "Kopf, linke Seite"), "head", True, "left"),
    ("headRight", ("Head, right side", "Cabeza, lado derecho", "Tête, côté droit", "Kopf, rechte Seite"), "head", True, "right"),
    ("scalp", ("Scalp", "Cuero cabelludo", "Cuir chevelu", "Kopfhaut"), "head", True, "vertex"),
    ("earLeft", ("Left ear", "Oreja izquierda", "Oreille gauche", "Linkes Ohr"), "head", False, None),
    ("earRight", ("Right ear", "Oreja derecha", "Oreille droite", "Rechtes Ohr"), "head", False, None),
    ("perioral", ("Perioral area", "Zona perioral", "Région péribuccale", "Perioralregion"), "head", False, None),
    ("tongue", ("Tongue", "Lengua", "Langue", "Zunge"), "head", False, None),
    ("trunkFront", ("Trunk, front", "Tronco, parte anterior", "Tronc, face antérieure", "Rumpf, vorne"), "trunk", False, None),
    ("trunkBack", ("Trunk, back", "Tronco, parte posterior", "Tronc, face postérieure", "Rumpf, hinten"), "trunk", False, None),
    ("genital", ("Genital area", "Zona genital", "Région génitale", "Genitalbereich"), "trunk", False, None),
    ("nails", ("Nails", "Uñas", "Ongles", "Nägel"), "upperLimbs", False, None),
    ("armLeft", ("Left arm", "Miembro superior izquierdo", "Membre supérieur gauche", "Linker Arm"), "upperLimbs", False, None),
    ("armRight", ("Right arm", "Miembro superior derecho", "Membre supérieur droit", "Rechter Arm"), "upperLimbs", False, None),
    ("upperArmLeft", ("Left upper arm", "Brazo izquierdo", "Bras gauche", "Linker Oberarm"), "upperLimbs", False, None),
    ("upperArmRight", ("Right upper arm", "Brazo derecho", "Bras droit", "Rechter Oberarm"), "upperLimbs", False, None),
    ("lowerArmLeft", ("Left forearm", "Antebrazo izquierdo", "Avant-bras gauche", "Linker Unterarm"), "upperLimbs", False, None),
    ("lowerArmRight", ("Right forearm", "Antebrazo derecho", "Avant-bras droit", "Rechter Unterarm"), "upperLimbs", False, None),
    ("elbowLeft", ("Left elbow", "Codo izquierdo", "Coude gauche", "Linker Ellenbogen"), "upperLimbs", False, None),
    ("elbowRight", ("Right elbow", "Codo derecho", "Coude droit", "Rechter Ellenbogen"), "upperLimbs", False, None),
    ("handLeft", ("Left hand", "Mano izquierda", "Main gauche", "Linke Hand"), "upperLimbs", False, None),
    ("handRight", ("Right hand", "Mano derecha", "Main droite", "Rechte Hand"), "upperLimbs", False, None),
    ("legLeft", ("Left leg", "Miembro inferior izquierdo", "Membre inférieur gauche", "Linkes Bein"), "lowerLimbs", False, None),
    ("legRight", ("Right leg", "Miembro inferior derecho", "Membre inférieur droit", "Rechtes Bein"), "lowerLimbs", False, None),
    ("upperLegLeft", ("Left thigh", "Muslo izquierdo", "Cuisse gauche", "Linker Oberschenkel"), "lowerLimbs", False, None),
    ("upperLegRight", ("Right thigh", "Muslo derecho", "Cuisse droite", "Rechter Oberschenkel"), "lowerLimbs", False, None),
    ("lowerLegLeft", ("Left lower leg", "Pierna izquierda", "Jambe gauche", "Linker Unterschenkel"), "lowerLimbs", False, None),
    ("lowerLegRight", ("Right lower leg", "Pierna derecha", "Jambe droite", "Rechter Unterschenkel"), "lowerLimbs", False, None),
    ("kneeLeft", ("Left knee", "Rodilla izquierda", "Genou gauche", "Linkes Knie"), "lowerLimbs", False, None),
    ("kneeRight", ("Right knee", "Rodilla derecha", "Genou droit", "Rechtes Knie"), "lowerLimbs", False, None),
    ("footLeft", ("Left foot", "Pie izquierdo", "Pied gauche", "Linker Fuß"), "lowerLimbs", False, None),
    ("footRight", ("Right foot", "Pie derecho", "Pied droit", "Rechter Fuß"), "lowerLimbs", False, None),
)

BODY_SITES: Mapping[str, BodySite] = MappingProxyType(
    {
        code: BodySite(code, MappingProxyType(dict(zip(LANGUAGES, names))), region, hair, quadrant)
        for code, names, region, hair, quadrant in _SITES
    }
)

# Share of body surface per region (Fredriksson & Pettersson 1978; EASI uses the same
# for patients aged 8 and over, Hanifin et al. 2001).
REGION_WEIGHTS_PASI: Mapping[Region, float] = MappingProxyType(
    {"head": 0.1, "upperLimbs": 0.2, "trunk": 0.3, "lowerLimbs": 0.4}
)
REGION_WEIGHTS_EASI = REGION_WEIGHTS_PASI
# Children aged 0-7 have a larger head and shorter legs (Hanifin et al. 2001).
REGION_WEIGHTS_EASI_CHILD: Mapping[Region, float] = MappingProxyType(
    {"head": 0.2, "upperLimbs": 0.2, "trunk": 0.3, "lowerLimbs": 0.3}
)
EASI_CHILD_AGE_LIMIT = 8.0  # years; the child weights apply below this age

# Share of scalp area per SALT quadrant, in percent (Olsen et al. 2004).
SALT_QUADRANT_WEIGHTS: Mapping[SaltQuadrant, float] = MappingProxyType(
    {"vertex": 40.0, "left": 18.0, "right": 18.0, "back": 24.0}
)
HAIR_BEARING_SITES: frozenset[str] = frozenset(c for c, s in BODY_SITES.items() if s.hair_bearing)


def easi_region_weights(age: float) -> Mapping[Region, float]:
    """EASI region multipliers for a patient of ``age`` years."""
    return REGION_WEIGHTS_EASI_CHILD if age < EASI_CHILD_AGE_LIMIT else REGION_WEIGHTS_EASI


def body_site(code: str) -> BodySite:
    """The site with this code; ``KeyError`` names the code when it is unknown."""
    try:
        return BODY_SITES[code]
    except KeyError:
        raise KeyError(f"unknown body site {code!r}") from None


def body_surface_share(code: str) -> float:
    """The site's share of the whole body surface (0-1). Sites carry no share of their own, so this is
    the share of the site's whole PASI/EASI region (both arms together are 20 %): an upper bound for a
    site that is only part of its region."""
    return REGION_WEIGHTS_PASI[body_site(code).region]


def describe() -> list[dict[str, Any]]:
    """The ``GET /body-sites`` payload, in catalogue order."""
    return [{"code": s.code, "name": dict(s.names), "region": s.region} for s in BODY_SITES.values()]
