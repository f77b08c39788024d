from enum import StrEnum

class ConfiguredAgencyId(StrEnum):
    ANTI_CORRUPTION = "anti-corruption"
    CHILD_RIGHTS = "child-rights"
    GP = "gp"
    LABOUR_INSP = "labour-insp"
    MVD_CTU = "mvd-ctu"
    NGO_NORTH = "ngo-north"
    NGO_SOUTH = "ngo-south"
    NRM_COORDINATOR = "nrm-coordinator"

    def __str__(self) -> str:
        return str(self.value)
