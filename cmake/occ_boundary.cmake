# The trust boundary, enforced by the build (docs/architecture.md, "Folders").
# Included at the end of CMakeLists.txt, once every target exists.
#
# Trusted libraries (code that runs in the enclave) must never link an
# untrusted one (host side: files, sockets; pack: ONNX import). Checked here
# at configure time over the whole link closure, and at test time over the
# symbols (ctest boundary_check, tests/check_boundary.sh), which also scans the
# trusted folders' #includes.
set(OCC_TRUSTED_TARGETS occ_trusted occ_ratls occ_enclave)
set(OCC_UNTRUSTED_TARGETS occ_host occ_pack)

function(occ_link_closure target var)
  set(seen ${${var}})
  foreach(prop LINK_LIBRARIES INTERFACE_LINK_LIBRARIES)
    get_target_property(libs ${target} ${prop})
    if(NOT libs)
      continue()
    endif()
    foreach(l ${libs})
      if(TARGET ${l} AND NOT l IN_LIST seen)
        list(APPEND seen ${l})
        occ_link_closure(${l} seen)
      endif()
    endforeach()
  endforeach()
  set(${var} ${seen} PARENT_SCOPE)
endfunction()

set(_occ_trusted_files)
set(_occ_untrusted_files)
foreach(t ${OCC_TRUSTED_TARGETS})
  if(TARGET ${t})
    set(closure)
    occ_link_closure(${t} closure)
    foreach(u ${OCC_UNTRUSTED_TARGETS})
      if(u IN_LIST closure)
        message(FATAL_ERROR "trust boundary: trusted library ${t} links untrusted ${u} "
                            "(the enclave may reach the host only through occ_ocalls, occ/boundary.h)")
      endif()
    endforeach()
    list(APPEND _occ_trusted_files $<TARGET_FILE:${t}>)
  endif()
endforeach()
foreach(u ${OCC_UNTRUSTED_TARGETS})
  if(TARGET ${u})
    list(APPEND _occ_untrusted_files $<TARGET_FILE:${u}>)
  endif()
endforeach()
add_test(NAME boundary_check
         COMMAND bash ${CMAKE_SOURCE_DIR}/tests/check_boundary.sh ${CMAKE_SOURCE_DIR}
                 --trusted ${_occ_trusted_files} --untrusted ${_occ_untrusted_files})
set_tests_properties(boundary_check PROPERTIES ENVIRONMENT "CC=${CMAKE_C_COMPILER}")
