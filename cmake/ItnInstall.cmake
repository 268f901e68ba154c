# Install rules: the libraries, their headers under <prefix>/include/itn/ (nothing else
# goes under include/) and an exported package, so that an outside project can do
# find_package(itn CONFIG REQUIRED) and link itn::sync, itn::itree, itn::notifier,
# itn::hw_model and itn::testing.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

get_property(itn_libraries GLOBAL PROPERTY ITN_LIBRARIES)
install(TARGETS ${itn_libraries} EXPORT itnTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  FILE_SET HEADERS DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/itn)

install(EXPORT itnTargets NAMESPACE itn:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/itn)
configure_package_config_file(cmake/itnConfig.cmake.in
  ${PROJECT_BINARY_DIR}/itnConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/itn)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/itnConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/itnConfig.cmake ${PROJECT_BINARY_DIR}/itnConfigVersion.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/itn)
