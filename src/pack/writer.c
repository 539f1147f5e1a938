/* placeholder, being written */
typedef int occ_placeholder_unit;
