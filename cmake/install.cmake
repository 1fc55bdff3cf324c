# Installing cnnrt: libcnnrt.so (public API only), the public headers, the model presets, the
# `cnnrt` tool, a CMake package (find_package(cnnrt) -> cnnrt::cnnrt) and a pkg-config file.
# Included from the top-level CMakeLists.txt after the targets exist.
include(CMakePackageConfigHelpers)

set(CNNRT_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/cnnrt)

install(TARGETS cnnrt EXPORT cnnrtTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
# Only include/cnnrt: the kernels/ and host/ headers are internal and never installed.
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/cnnrt DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
  FILES_MATCHING PATTERN "*.hpp")
# The directory the library looks in at run time, found from where libcnnrt.so (or the tool) was
# loaded (CNNRT_PRESET_DIR_FROM_LIBDIR / _FROM_BINDIR in CMakeLists.txt).
install(DIRECTORY ${PROJECT_SOURCE_DIR}/tools/presets/
  DESTINATION ${CNNRT_INSTALL_PRESET_DIR} FILES_MATCHING PATTERN "*.json")
if(TARGET cnnrt_tool)
  install(TARGETS cnnrt_tool RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endif()

install(EXPORT cnnrtTargets NAMESPACE cnnrt:: DESTINATION ${CNNRT_INSTALL_CMAKEDIR})
configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/cnnrtConfig.cmake.in
  ${PROJECT_BINARY_DIR}/cnnrtConfig.cmake INSTALL_DESTINATION ${CNNRT_INSTALL_CMAKEDIR})
# 0.x releases make no compatibility promise across minor versions.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/cnnrtConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/cnnrtConfig.cmake ${PROJECT_BINARY_DIR}/cnnrtConfigVersion.cmake
  DESTINATION ${CNNRT_INSTALL_CMAKEDIR})

# pkg-config: the prefix is found from the .pc file's own location, so an install moved with
# `cmake --install --prefix DIR` (or DESTDIR) still resolves.
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}" OR IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
  set(CNNRT_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
  set(CNNRT_PC_LIBDIR "${CMAKE_INSTALL_FULL_LIBDIR}")
  set(CNNRT_PC_INCLUDEDIR "${CMAKE_INSTALL_FULL_INCLUDEDIR}")
else()
  file(RELATIVE_PATH CNNRT_PC_UP "/prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/prefix")
  set(CNNRT_PC_PREFIX "\${pcfiledir}/${CNNRT_PC_UP}")
  set(CNNRT_PC_LIBDIR "\${prefix}/${CMAKE_INSTALL_LIBDIR}")
  set(CNNRT_PC_INCLUDEDIR "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
endif()
configure_file(${CMAKE_CURRENT_LIST_DIR}/cnnrt.pc.in ${PROJECT_BINARY_DIR}/cnnrt.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/cnnrt.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
