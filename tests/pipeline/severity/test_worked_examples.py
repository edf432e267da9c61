"""Worked examples: published inputs give the published score and category.

Each test names its source. Where a publication gives the procedure and the cut-offs but
no filled-in patient, the example is worked by hand from that procedure, the arithmetic
is written out next to it, and the expected category comes from the cited bands.
"""

from __future__ import annotations

import pytest

from pipeline.severity.systems import SYSTEMS


def _category(code: str, score: float) -> str:
    return SYSTEMS[code].interpret(score).category


# Steps (a)-(f) of PASI as tabulated by Feldman & Krueger, Ann Rheum Dis 2005;64(Suppl 2):ii65-ii68
# (Fredriksson & Pettersson 1978): (site, erythema, induration, desquamation, involved % of the region).
PASI_PATIENT = [("headFront", 2, 1, 1, 15), ("armLeft", 2, 2, 1, 25), ("trunkFront", 3, 2, 2, 35),
                ("legRight", 2, 2, 2, 55)]


def test_apasi_sites_add_up_to_the_whole_body_pasi() -> None:
    """The whole-body PASI is apasi's global combination, one imaged zone per region: head 4 x 2 x 0.1 = 0.8,
    arms 5 x 2 x 0.2 = 2.0, trunk 7 x 3 x 0.3 = 6.3, legs 6 x 4 x 0.4 = 9.6 -> 18.7; PASI > 10 is moderate to
    severe (Mrowietz et al. 2011)."""
    sites = [(site, {"erythema": e, "induration": i, "desquamation": d, "surface": area})
             for site, e, i, d, area in PASI_PATIENT]
    total, shares = SYSTEMS["apasi"].global_score(sites)
    assert total == 18.7 and shares == [0.8, 2.0, 6.3, 9.6]
    assert _category("apasi", total) == "Moderate to severe"


def test_pasi_one_zone_form_gives_each_region_share() -> None:
    """The one-zone PASI questionnaire (area score given directly) weighted by the site's region gives the same
    region shares, and they add up to the whole-body PASI (procedure as above)."""
    area_scores = {15: 2, 25: 2, 35: 3, 55: 4}
    shares = [SYSTEMS["pasi"].local_score({"surface": area_scores[area], "erythema": e, "induration": i,
                                           "desquamation": d}, site)
              for site, e, i, d, area in PASI_PATIENT]
    assert shares == [0.8, 2.0, 6.3, 9.6] and round(sum(shares), 1) == 18.7
    # Without a body site, the zone's own score: (1 + 2 + 3) x 5 = 30 (the reference client's example values).
    assert SYSTEMS["pasi"].local_score({"surface": 5, "erythema": 1, "induration": 2, "desquamation": 3}) == 30


@pytest.mark.parametrize(("age", "score", "category"), [(35, 11.1, "Moderate"), (5, 9.6, "Moderate")])
def test_easi_adult_and_child(age: float, score: float, category: str) -> None:
    """EASI procedure and age-dependent multipliers of Hanifin et al., Exp Dermatol 2001;10:11-18, half
    points as allowed by Hanifin et al., Dermatitis 2022 (1.5 and 2.5, not 0.5); bands of Leshem et al.,
    Br J Dermatol 2015 (moderate 7.1-21.0).

    Adult: head 3 x 1 x 0.1 = 0.3, upper limbs 7.5 x 2 x 0.2 = 3.0, trunk 2 x 1 x 0.3 = 0.6,
    lower limbs 6 x 3 x 0.4 = 7.2 -> 11.1. Under 8: head x 0.2 = 0.6, lower limbs x 0.3 = 5.4 -> 9.6.
    """
    values = {
        "headErythema": 1, "headOedema": 1, "headExcoriation": 1, "headLichenification": 0, "headArea": 5,
        "upperLimbsErythema": 2.5, "upperLimbsOedema": 2, "upperLimbsExcoriation": 2,
        "upperLimbsLichenification": 1, "upperLimbsArea": 20,
        "trunkErythema": 1, "trunkOedema": 1, "trunkExcoriation": 0, "trunkLichenification": 0, "trunkArea": 5,
        "lowerLimbsErythema": 2, "lowerLimbsOedema": 2, "lowerLimbsExcoriation": 1,
        "lowerLimbsLichenification": 1, "lowerLimbsArea": 30,
        "age": age,
    }
    assert SYSTEMS["easi"].local_score(values) == score
    assert _category("easi", score) == category


SCORAD_B = {"erythema": 2, "swelling": 2, "crusting": 1, "excoriation": 2, "lichenification": 1, "dryness": 2}


def test_scorad() -> None:
    """SCORAD = A/5 + 7B/2 + C (European Task Force on Atopic Dermatitis, Dermatology 1993;186:23-31):
    A = 30 %, B = 2 + 2 + 1 + 2 + 1 + 2 = 10, C = 6 + 4 -> 6 + 35 + 10 = 51; severe from 50
    (Chopra et al., Br J Dermatol 2017)."""
    values = {"surface": 30, **SCORAD_B, "pruritus": 6, "sleeplessness": 4}
    assert SYSTEMS["scorad"].local_score(values) == 51
    assert _category("scorad", 51) == "Severe"


def test_ascorad_zone() -> None:
    """Automatic SCORAD of one zone: 100 % of the trunk (30 % of the body surface) gives A = 30, so the
    same SCORAD 51 as above; 50 % of the trunk gives A = 15 -> 3 + 35 + 10 = 48, moderate (25-49.9)."""
    values = {**SCORAD_B, "pruritus": 6, "sleeplessness": 4}
    assert SYSTEMS["ascorad"].local_score(values | {"surface": 100}, "trunkFront") == 51
    assert SYSTEMS["ascorad"].local_score(values | {"surface": 50}, "trunkBack") == 48
    assert _category("ascorad", 48) == "Moderate"


@pytest.mark.parametrize(
    ("counts", "score", "category"),
    [
        ({"nodule": 1, "abscess": 0, "drainingTunnel": 0}, 1, "Mild"),
        ({"nodule": 0, "abscess": 2, "drainingTunnel": 0}, 4, "Moderate"),
        ({"nodule": 1, "abscess": 3, "drainingTunnel": 1}, 11, "Severe"),
    ],
)
@pytest.mark.parametrize("code", ["ihs4", "aihs4"])
def test_ihs4(code: str, counts: dict[str, int], score: int, category: str) -> None:
    """The three examples of the German S2k hidradenitis suppurativa guideline (Zouboulis et al.,
    Aktuelle Dermatologie 2024;50:30-83): one nodule = 1 (mild), two abscesses = 4 (moderate), one
    draining tunnel + three abscesses + one nodule = 11 (severe), bands of Zouboulis et al. 2017."""
    assert SYSTEMS[code].local_score(counts, "trunkFront") == score
    assert _category(code, score) == category


def test_aihs4_sites_add_up() -> None:
    """IHS4 counts lesions over the whole body, so per-site scores add (Zouboulis et al. 2017)."""
    axilla = {"nodule": 1, "abscess": 0, "drainingTunnel": 0}
    groin = {"nodule": 1, "abscess": 3, "drainingTunnel": 1}
    assert SYSTEMS["aihs4"].global_score([("armLeft", axilla), ("genital", groin)]) == (12, [1, 11])


@pytest.mark.parametrize(
    ("days", "score", "category"),
    [((0, 0, 0, 0, 0, 0, 0), 0, "Urticaria-free"), ((1, 0, 2, 0, 1, 1, 1), 6, "Well controlled"),
     ((1, 1, 1, 1, 1, 1, 1), 7, "Mild"), ((4, 3, 5, 2, 6, 4, 3), 27, "Moderate"),
     ((4, 4, 4, 4, 4, 4, 4), 28, "Severe")],
)
def test_uas7(days: tuple[int, ...], score: int, category: str) -> None:
    """UAS7 = sum of 7 daily UAS (Mlynek et al., Allergy 2008); the band edges of Stull et al.,
    Br J Dermatol 2017: 0 urticaria-free, 1-6 well controlled, 7-15 mild, 16-27 moderate, 28-42 severe."""
    values = {f"day{d}": v for d, v in enumerate(days, start=1)}
    assert SYSTEMS["uas7"].local_score(values) == score
    assert _category("uas7", score) == category


def test_auas_grades_the_wheal_count() -> None:
    """UAS wheal grade: none, < 20, 20-50, > 50 wheals (Zuberbier et al., Allergy 2022): 35 wheals -> 2,
    plus moderate itch 2 -> UAS 4."""
    auas = SYSTEMS["auas"]
    values = {"wheals": auas.item("wheals").from_sign(35), "pruritus": 2}
    assert auas.local_score(values, "trunkBack") == 4
    assert _category("auas", 4) == "Severe"


@pytest.mark.parametrize("code", ["salt", "asalt"])
def test_salt(code: str) -> None:
    """SALT = 0.40 vertex + 0.18 left + 0.18 right + 0.24 back (Olsen et al., J Am Acad Dermatol
    2004;51:440-447): 50 %, 30 %, 20 %, 10 % -> 20 + 5.4 + 3.6 + 2.4 = 31.4, moderate (21-49 %,
    King et al., Dermatol Ther 2022)."""
    system = SYSTEMS[code]
    if system.automatic:
        sites = [("headTop", 50), ("headLeft", 30), ("headRight", 20), ("headBack", 10)]
        total, shares = system.global_score([(site, {"hairLoss": loss}) for site, loss in sites])
        assert shares == [20.0, 5.4, 3.6, 2.4]
    else:
        total = system.local_score({"vertexHairLoss": 50, "leftHairLoss": 30, "rightHairLoss": 20,
                                    "backHairLoss": 10})
    assert total == 31.4
    assert _category(code, total) == "Moderate"


def test_gags() -> None:
    """GAGS (Doshi et al., Int J Dermatol 1997;36:416-418): forehead papules 2 x 2, both cheeks pustules
    3 x 2 each, nose comedones 1 x 1, chin papules 2 x 1, chest and back clear -> 4 + 6 + 6 + 1 + 2 = 19,
    moderate (19-30)."""
    values = {"forehead": 2, "rightCheek": 3, "leftCheek": 3, "nose": 1, "chin": 2, "chestAndUpperBack": 0}
    assert SYSTEMS["gags"].local_score(values) == 19
    assert _category("gags", 19) == "Moderate"
    assert _category("gags", 18) == "Mild" and _category("gags", 39) == "Very severe"


@pytest.mark.parametrize(
    ("answers", "score", "category"),
    [((3, 2, 1, 1, 2, 0, 0, 1, 0, 1), 11, "Very large effect"), ((1, 1, 0, 0, 0, 0, 0, 0, 0, 0), 2, "Small effect"),
     ((1, 0, 0, 0, 0, 0, 0, 0, 0, 0), 1, "No effect"), ((3,) * 7 + (0,) * 3, 21, "Extremely large effect")],
)
def test_dlqi(answers: tuple[int, ...], score: int, category: str) -> None:
    """DLQI = sum of 10 answers 0-3 (Finlay & Khan, Clin Exp Dermatol 1994); bands of Hongbo et al.,
    J Invest Dermatol 2005: 0-1 no effect, 2-5 small, 6-10 moderate, 11-20 very large, 21-30 extremely large."""
    values = dict(zip((item.code for item in SYSTEMS["dlqi"].items), answers))
    assert SYSTEMS["dlqi"].local_score(values) == score
    assert _category("dlqi", score) == category


@pytest.mark.parametrize(
    ("grades", "score", "category"),
    [((0, 0, 0), 0, "Clear"), ((1, 1, 2), 1, "Almost clear"), ((2, 2, 1), 2, "Mild"), ((3, 3, 2), 3, "Moderate"),
     ((4, 4, 3), 4, "Severe")],
)
def test_gppga(grades: tuple[int, int, int], score: int, category: str) -> None:
    """GPPGA total from the mean of erythema, pustules and scaling: 0 if 0, 1 if < 1.5, 2 if < 2.5, 3 if < 3.5,
    else 4 (Burden et al., Am J Clin Dermatol 2022). Means here: 0, 1.33, 1.67, 2.67, 3.67."""
    values = dict(zip(("erythema", "pustulation", "desquamation"), grades))
    assert SYSTEMS["agppga"].local_score(values, "trunkFront") == score
    assert _category("agppga", score) == category


def test_vasi() -> None:
    """VASI = sum of hand units x residual depigmentation (Hamzavi et al., Arch Dermatol 2004):
    2 hand units at 75 % + 4 hand units at 50 % (52 % measured, nearest VASI level) = 1.5 + 2 = 3.5, mild
    (under 3 % of the body is mild, 3-10 % moderate). Each site alone scores its depigmentation level."""
    avasi = SYSTEMS["avasi"]
    sites = [("handLeft", {"handUnits": 2, "depigmentation": 75}), ("legRight", {"handUnits": 4, "depigmentation": 52})]
    assert avasi.global_score(sites) == (3.5, [1.5, 2.0])
    assert avasi.interpret(3.5, whole_body=True).category == "Moderate"
    assert [avasi.local_score(values, site) for site, values in sites] == [75, 50]
    assert avasi.local_score({"depigmentation": 52}, "armLeft") == 50  # no hand units: the reference client's call


@pytest.mark.parametrize(("count", "category"), [(0, "None"), (5, "Mild"), (6, "Moderate"), (20, "Moderate"),
                                                 (21, "Severe"), (50, "Severe"), (51, "Very severe")])
def test_acne_lesion_count(count: int, category: str) -> None:
    """Inflammatory lesions on half of the face: 0-5 mild, 6-20 moderate, 21-50 severe, > 50 very severe
    (Hayashi et al., J Dermatol 2008); no lesion at all is reported as none."""
    aladin = SYSTEMS["aladin"]
    assert _category("aladin", aladin.local_score({"acne": count}, "headLeft")) == category
    assert aladin.item("acne").interpretation(count) == category


def test_uct_seven_point_checklist_and_pure4() -> None:
    """UCT: 12 or more is well controlled (Weller et al., J Allergy Clin Immunol 2014). 7-point checklist:
    change in size (2) + irregular pigmentation (2) = 4 warrants referral at 3 or more (NICE NG12; Walter et al.
    2013). PURE-4: one positive item is a positive screen (Audureau et al., JEADV 2018)."""
    uct = SYSTEMS["uct"]
    answers = dict.fromkeys((i.code for i in uct.items), 3)
    assert uct.local_score(answers) == 12 and _category("uct", 12) == "Well controlled"
    seven = SYSTEMS["sevenPc"]
    lesion = dict.fromkeys((i.code for i in seven.items), False) | {"changeInSize": True, "irregularPigmentation": True}
    assert seven.local_score(lesion) == 4 and _category("sevenPc", 4) == "High risk"
    minor = dict.fromkeys((i.code for i in seven.items), 0) | {"inflammation": 1, "crustingOrBleeding": 1}
    assert seven.local_score(minor) == 2 and _category("sevenPc", 2) == "Low risk"
    pure4 = SYSTEMS["pure4"]
    screen = dict.fromkeys((i.code for i in pure4.items), 0) | {"question2": 1}
    assert pure4.local_score(screen) == 1 and _category("pure4", 1) == "Positive"


def _band(code: str, values: dict) -> tuple[float, str, int]:
    system = SYSTEMS[code]
    score = system.local_score(values)
    band = system.interpret(score)
    return score, band.category, band.intensity


def test_reference_client_live_manual_cases() -> None:
    """The three manual cases the reference client runs live, with their expected score and band.

    DLQI 1+2+3+1+2+3+1+2+3+1 = 19, very large effect (11-20, Hongbo et al. 2005); PURE-4 two positive items,
    positive (Audureau et al. 2018); 7-point checklist change in size 2 + irregular pigmentation 2 +
    inflammation 1 + crusting or bleeding 1 = 6, high risk from 3 (NICE NG12)."""
    dlqi = {f"question{i}": v for i, v in enumerate((1, 2, 3, 1, 2, 3, 1, 2, 3, 1), start=1)}
    assert _band("dlqi", dlqi) == (19, "Very large effect", 3)
    pure4 = {f"question{i}": v for i, v in enumerate((1, 0, 1, 0), start=1)}
    assert _band("pure4", pure4) == (2, "Positive", 3)
    seven = dict(zip((i.code for i in SYSTEMS["sevenPc"].items), (1, 1, 0, 1, 0, 0, 1)))
    assert list(seven) == ["changeInSize", "irregularPigmentation", "irregularBorder", "inflammation",
                           "largerThanOtherLesions", "itchOrAlteredSensation", "crustingOrBleeding"]
    assert _band("sevenPc", seven) == (6, "High risk", 3)


def test_pga_is_the_rounded_mean() -> None:
    """Averaged static PGA (Langley & Ellis, J Am Acad Dermatol 2004): erythema 0, desquamation 1, induration 1
    -> mean 0.67 -> 1 almost clear; 3, 3, 2 -> 2.67 -> 3 moderate; 2, 2, 3 -> 2.33 -> 2 mild."""
    pga = SYSTEMS["pga"]
    for grades, score, category in (((0, 1, 1), 1, "Almost clear"), ((3, 3, 2), 3, "Moderate"), ((2, 2, 3), 2, "Mild"),
                                    ((1, 2, 2), 2, "Mild")):  # 1.67 rounds to 2
        values = dict(zip(("erythema", "desquamation", "induration"), grades))
        assert pga.local_score(values) == score and _category("pga", score) == category


def test_resvech_and_scovid_are_sums() -> None:
    """RESVECH 2.0 (Restrepo-Medrano & Verdú Soriano, Gerokomos 2011) and the COVID-19 skin symptom score add
    their items; the reference client's example answers give 39 (RESVECH, moderate on dermq's reading 27-52) and
    8 + 10 + 0 + 1 + 2 + 3 + 0 + 1 + 2 + 3 = 30 (SCOVID, severe on dermq's reading from 30)."""
    resvech = dict(zip((i.code for i in SYSTEMS["resvech"].items),
                       (0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1, 2, 1, 4, 0, 1, 2, 3, 4, 0, 1)))
    assert _band("resvech", resvech) == (39, "Moderate", 2)
    scovid = dict(zip((i.code for i in SYSTEMS["scovid"].items), (8, 10, 0, 1, 2, 3, 0, 1, 2, 3)))
    assert _band("scovid", scovid) == (30, "Severe", 3)


def test_nsil() -> None:
    """NSIL (dermq's own index): dryness 1 + erythema 0 + no inflammatory lesions = 1, mild; dryness 2 +
    erythema 2 + 6 inflammatory lesions (grade 2) = 6, moderate."""
    nsil = SYSTEMS["nsil"]
    assert _band("nsil", {"dryness": 1, "erythema": 0, "inflammations": 0}) == (1, "Mild", 1)
    grade = nsil.item("inflammations").from_sign(6)
    assert _band("nsil", {"dryness": 2, "erythema": 2, "inflammations": grade}) == (6, "Moderate", 2)


def test_awosi_stage_4_wound() -> None:
    """A pressure ulcer with muscle exposed is NPIAP Stage 4 (Edsberg et al., J Wound Ostomy Continence Nurs
    2016) whatever else is seen. Severity sum: thickened borders 1 + perilesional erythema 1 + maceration 1 +
    biofilm 1 + dermis, subcutaneous tissue and muscle affected 3 + slough 1 = 8; delimited borders, serous and
    fibrinous exudate and granulation are not adverse."""
    awosi = SYSTEMS["awosi"]
    present = {"bordersDelimited", "bordersThickened", "perilesionalErythema", "perilesionalMaceration",
               "biofilmCompatibleTissue", "affectedTissueDermisEpidermis", "affectedTissueMuscle",
               "affectedTissueSubcutaneous", "exudationFibrinous", "exudationSerous", "tissueInWoundBedSlough",
               "tissueInWoundBedGranulation"}
    values = {i.code: float(i.code in present) for i in awosi.items}
    score = awosi.local_score(values, "headLeft")
    band = awosi.interpret(score, values)
    assert (score, band.category, band.intensity) == (8, "Stage 4", 3)
